// Word lists for person names and street addresses (src/safety/deid_gazetteers.h). The English
// given names and surnames are common ones of the US census and SSA name tables; the Chinese
// surnames are the most frequent of the 2020 census list. Written for ohm; a name that is not in
// the lists is found only through the title and context patterns (docs/deid.md).
#include "deid_gazetteers.h"

#include <sstream>

namespace ohm::safety::deid {

namespace {

std::vector<std::string> split(const char* words) {
  std::vector<std::string> out;
  std::istringstream in(words);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}
// UTF-8 characters of a string of Han characters.
std::vector<std::string> chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}
std::unordered_set<std::string> set_of(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

const char* kEnGiven =
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy "
    "Matthew Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew "
    "Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy "
    "Deborah Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob "
    "Kathleen Gary Amy Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela "
    "Justin Emma Scott Nicole Brandon Helen Benjamin Samantha Samuel Katherine Gregory Christine "
    "Alexander Debra Frank Rachel Patrick Carolyn Raymond Janet Jack Catherine Dennis Maria Jerry "
    "Heather Tyler Diane Aaron Ruth Jose Julie Adam Olivia Nathan Joyce Henry Virginia Douglas "
    "Victoria Zachary Kelly Peter Lauren Kyle Christina Ethan Joan Walter Evelyn Noah Judith "
    "Jeremy Megan Christian Andrea Keith Cheryl Roger Hannah Terry Jacqueline Gerald Martha Harold "
    "Gloria Sean Teresa Austin Ann Carl Sara Arthur Madison Lawrence Frances Dylan Kathryn Jesse "
    "Janice Jordan Jean Bryan Abigail Billy Alice Joe Julia Bruce Judy Gabriel Sophia Logan Grace "
    "Albert Denise Willie Amber Alan Doris Juan Marilyn Wayne Danielle Elijah Beverly Randy "
    "Isabella "
    "Roy Theresa Vincent Diana Ralph Natalie Eugene Brittany Russell Charlotte Bobby Marie Mason "
    "Kayla Philip Alexis Louis Lori Liam Oliver Lucas Mia Ava Amelia Harper Ella Chloe Zoe Lily "
    "Ben Tom Tim Sam Alex Chris Mike Dave Dan Kate Jane Anne Rose Paula Carlos Luis Miguel Ahmed "
    "Mohammed Fatima Priya Raj Hiroshi Yuki Sven Lars Ingrid Hans Klaus Pierre Marie Sofia Elena";
const char* kEnSurnames =
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips "
    "Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers "
    "Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson "
    "Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo "
    "Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell "
    "Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson "
    "Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera "
    "Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez "
    "McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns "
    "Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt "
    "Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer "
    "Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant "
    "Dunn Kelley Spencer Hawkins Arnold Pierce Hansen Peters Santos Hart Bradley Knight Elliott "
    "Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews Ray Berry Perkins Hoffman "
    "Johnston Matthews Pena Richards Willis Carpenter Lawrence Sandoval Mueller Schneider Fischer "
    "Weber Dubois Moreau Rossi Russo Ferrari Tanaka Suzuki Sato Watanabe Singh Kumar Sharma Khan "
    "Wang Li Zhang Liu Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Gao Lin Luo Zheng Liang "
    "Xie Song Tang Han Feng Deng Cao Peng Zeng Xiao Tian Dong Yuan Pan Jiang Cai Yu Du Ye Cheng "
    "Su Wei Lu Ding Ren Shen Yao Cui Zhong Tan Fan Jin Shi Liao Jia Xia Fu Fang Bai Zou Meng Xiong "
    "Qin Qiu Yin Xue Yan Duan Lei Hou Long Shi Tao Li Gu Mao Hao Gong Shao Wan Qian Yan Wu Dai Mo "
    "Kong Xiang Tang";
// Pinyin surnames (a subset of the list above) that may stand first: "Wang Fang".
const char* kPinyinSurnames =
    "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Gao Lin Luo Zheng "
    "Liang Xie Song Tang Han Feng Deng Cao Peng Zeng Xiao Tian Dong Yuan Pan Jiang Cai Du Ye Cheng "
    "Su Wei Lu Ding Ren Shen Yao Cui Zhong Tan Fan Jin Liao Jia Xia Fang Bai Zou Meng Xiong Qin "
    "Qiu Yin Xue Duan Lei Hou Gu Mao Hao Gong Shao Qian Dai Kong";
const char* kPinyinGiven =
    "Wei Fang Na Min Jing Li Qiang Lei Jun Yang Yong Yan Jie Juan Tao Ming Chao Xiuying Xia Ping "
    "Gang Gui Hua Hui Lan Mei Ning Qing Xin Yu Yi Hao Bo Peng Xiaoming Xiaohong Jian Jianguo "
    "Zhiwei Haoran Yuxuan Zihan Yichen Yutong Xinyi";
const char* kTitles = "Mr Mrs Ms Miss Dr Prof Professor Sir Madam Mx Mister";
// Capitalised words that start sentences or name things, never a first name of a person.
const char* kStopWords =
    "The A An In On At This That These Those My Our Your His Her Their Its We You They He She It "
    "I Please Call Contact Send Email Phone Tel Dear Hello Hi Thanks Thank Regards From To Cc Re "
    "Subject Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March "
    "April May June July August September October November December If When While After Before "
    "And Or But So Our Street Avenue Road North South East West New Old Saint St Mount Lake Park "
    "Bank Hospital University College School Company Inc Ltd Corp Order Invoice Version Release "
    "Customer Patient Account Card Number Date Born Name Address Visit Ask Meet Tell Let Is Was "
    "Are Were Do Did Has Have Had Can Will Would Should Could Not No Yes River Bay Valley Island "
    "Harbour Harbor Bridge Tower Center Centre Hall Museum Airport Station Mountain Hotel Post";
const char* kStreetSuffixes =
    "Street St Avenue Ave Road Rd Boulevard Blvd Lane Ln Drive Dr Court Ct Place Pl Way Terrace "
    "Ter Parkway Pkwy Circle Cir Highway Hwy Square Sq Trail Trl Crescent Close Row";

const char* kZhSurnames =
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
    "万钱严覃武戴莫孔向汤";
const char* kZhCompound = "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 令狐 夏侯 司徒 端木";
// Characters that end a given name (particles, verbs, and characters that start what follows).
const char* kZhStopChars =
    "的是在和与及说给电住手身邮先女老医经教同主来去了也都就被把对向从到为于有没不很请已将要会"
    "让叫打发寄收联号码址证件卡户账";
const char* kZhNameContext =
    "姓名 我叫 名叫 叫做 联系人 患者 客户 收件人 寄件人 申请人 经办人 持卡人 负责人 法人 乘客 "
    "用户 学生 员工 病人 租客 房东 证人 被告 原告";
const char* kZhTitles = "先生 女士 小姐 老师 医生 经理 教授 同学 主任 律师 总经理 院长 工程师";
const char* kZhStreetSuffixes = "路 街 道 巷 弄";
// Characters that end an address on its left ("住在", "位于", "地址是").
const char* kZhAddrStop = "在 住 于 是 址 到 往 从 寄 的 为 至 和 与 及 我 他 她 你 请 送";
const char* kZhUnitSuffixes = "栋 幢 号楼 楼 单元 室 层";
const char* kZhGivenChars =
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂华慧兰梅宁清欣宇怡浩博鹏建国志";
const char* kZhCities =
    "北京市朝阳区 上海市浦东新区 广州市天河区 深圳市南山区 杭州市西湖区 成都市武侯区";
const char* kZhRoads = "建国路 人民路 中山路 解放路 和平街 长江路";

}  // namespace

const Gazetteers& gazetteers() {
  static const Gazetteers g = [] {
    Gazetteers z;
    z.en_given_list = split(kEnGiven);
    z.en_surname_list = split(kEnSurnames);
    z.en_given = set_of(z.en_given_list);
    z.en_surnames = set_of(z.en_surname_list);
    z.en_titles = set_of(split(kTitles));
    z.en_stop_words = set_of(split(kStopWords));
    z.pinyin_surname = set_of(split(kPinyinSurnames));
    z.pinyin_given = set_of(split(kPinyinGiven));
    z.street_suffixes = set_of(split(kStreetSuffixes));
    z.zh_surname_list = chars(kZhSurnames);
    z.zh_surnames = set_of(z.zh_surname_list);
    z.zh_compound_surnames = set_of(split(kZhCompound));
    z.zh_stop_chars = set_of(chars(kZhStopChars));
    z.zh_name_context = split(kZhNameContext);
    z.zh_titles = split(kZhTitles);
    z.zh_street_suffixes = set_of(split(kZhStreetSuffixes));
    z.zh_addr_stop = set_of(split(kZhAddrStop));
    z.zh_unit_suffixes = split(kZhUnitSuffixes);
    z.zh_given_chars = chars(kZhGivenChars);
    z.zh_cities = split(kZhCities);
    z.zh_roads = split(kZhRoads);
    return z;
  }();
  return g;
}

}  // namespace ohm::safety::deid
